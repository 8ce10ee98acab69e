//! One PD client and PD cache per Cluster.
//!
//! The Cluster controller registers a cluster once its PD URL is known and drops it when
//! the Cluster goes; every other controller only looks the cluster up. The caches'
//! events are forwarded, tagged with their cluster, to whoever subscribes (the PD and
//! TiKV controllers turn them into reconcile requests).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tikv_operator_pd::{CacheConfig, Fingerprint, PdCache, PdClient, PdError, PdEvent, PdWrite, TlsMaterial};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::fence::{Fence, FencedPdWrite};

/// A Cluster, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey {
    pub namespace: String,
    pub name: String,
}

impl ClusterKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A PD event of one cluster. `event: None` means the forwarder lagged and events were
/// lost: every instance of the cluster should be looked at again.
#[derive(Clone, Debug)]
pub struct ClusterPdEvent {
    pub cluster: ClusterKey,
    pub event: Option<PdEvent>,
}

/// What tasks use to talk to a cluster's PD: the cache for reads, and the writer, only
/// through this handle's methods, each of which makes the cache poll again at once and
/// counts every view read before it as stale (also after a failed write: a timed-out
/// write may still have been applied).
#[derive(Clone)]
pub struct PdHandle {
    pub cache: PdCache,
    writer: Arc<dyn PdWrite>,
}

impl fmt::Debug for PdHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdHandle").field("cache", &self.cache).finish_non_exhaustive()
    }
}

impl PdHandle {
    pub fn new(cache: PdCache, writer: Arc<dyn PdWrite>) -> Self {
        Self { cache, writer }
    }

    fn wrote<T>(&self, result: Result<T, PdError>) -> Result<T, PdError> {
        self.cache.note_write();
        result
    }

    /// Takes the store offline (never `force`); see [`PdWrite::delete_store`].
    pub async fn delete_store(&self, id: u64) -> Result<(), PdError> {
        self.wrote(self.writer.delete_store(id).await)
    }

    /// Cancels taking the store offline (`state=Up`); see [`PdWrite::cancel_delete_store`].
    pub async fn cancel_delete_store(&self, id: u64) -> Result<(), PdError> {
        self.wrote(self.writer.cancel_delete_store(id).await)
    }

    pub async fn add_evict_leader(&self, store_id: u64) -> Result<(), PdError> {
        self.wrote(self.writer.add_evict_leader(store_id).await)
    }

    /// `false` when the store was not evicted.
    pub async fn remove_evict_leader(&self, store_id: u64) -> Result<bool, PdError> {
        self.wrote(self.writer.remove_evict_leader(store_id).await)
    }

    pub async fn delete_member_by_id(&self, id: u64) -> Result<(), PdError> {
        self.wrote(self.writer.delete_member_by_id(id).await)
    }

    pub async fn delete_member_by_name(&self, name: &str) -> Result<(), PdError> {
        self.wrote(self.writer.delete_member_by_name(name).await)
    }

    pub async fn update_member_peer_urls(&self, id: u64, peer_urls: &[String]) -> Result<(), PdError> {
        self.wrote(self.writer.update_member_peer_urls(id, peer_urls).await)
    }

    pub async fn transfer_leader(&self, name: &str) -> Result<(), PdError> {
        self.wrote(self.writer.transfer_leader(name).await)
    }

    /// PD's schedulers, read now, uncached (a read: the views stay fresh).
    pub async fn schedulers(&self) -> Result<Vec<String>, PdError> {
        self.writer.schedulers().await
    }

    /// The regions with a peer on the store and their voters, read from PD now.
    pub async fn store_regions(&self, store_id: u64) -> Result<Vec<tikv_operator_pd::RegionVoters>, PdError> {
        self.writer.store_regions(store_id).await
    }

    /// A store's running config, read from its status server.
    pub async fn store_config(&self, status_url: &str) -> Result<serde_json::Value, PdError> {
        self.writer.store_config(status_url).await
    }

    /// Changes a store's config online (a write to the store, not to PD: the views stay
    /// fresh).
    pub async fn update_store_config(
        &self,
        status_url: &str,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), PdError> {
        self.writer.update_store_config(status_url, changes).await
    }

    /// The leaders a store counts itself (its `/metrics`).
    pub async fn store_leader_count(&self, status_url: &str) -> Result<u64, PdError> {
        self.writer.store_leader_count(status_url).await
    }

    /// PD's running config.
    pub async fn pd_config(&self) -> Result<serde_json::Value, PdError> {
        self.writer.pd_config().await
    }

    /// Changes one key of PD's config online.
    pub async fn update_pd_config(&self, key: &str, value: &serde_json::Value) -> Result<(), PdError> {
        self.wrote(self.writer.update_pd_config(key, value).await)
    }

    /// PD's region checks, read now (a read: the views stay fresh).
    pub async fn region_health(&self) -> Result<tikv_operator_pd::RegionHealth, PdError> {
        self.writer.region_health().await
    }

    /// The certificate the instance at `base` serves, from a new handshake (a read).
    pub async fn serving_certificate(
        &self,
        base: &str,
        path: &'static str,
    ) -> Result<tikv_operator_pd::CertificateSummary, PdError> {
        self.writer.serving_certificate(base, path).await
    }

    /// Merges labels into a store's (never removing one); see [`PdWrite::set_store_labels`].
    pub async fn set_store_labels(
        &self,
        id: u64,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), PdError> {
        self.wrote(self.writer.set_store_labels(id, labels).await)
    }
}

struct Entry {
    url: String,
    /// The real client, for swapping TLS material in place (`None` for handles made elsewhere).
    client: Option<PdClient>,
    tls: Option<Fingerprint>,
    handle: PdHandle,
    forwarder: tokio::task::AbortHandle,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

pub struct PdRegistry {
    config: CacheConfig,
    /// The caches' timers run on it (the operator's clock).
    clock: Arc<dyn tikv_operator_pd::CacheClock>,
    /// HTTP proxy for PD requests; `None` follows the environment (`HTTP_PROXY`).
    proxy: Option<String>,
    entries: Mutex<HashMap<ClusterKey, Entry>>,
    events: broadcast::Sender<ClusterPdEvent>,
    /// Told about every request of every client made here (latency, errors).
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Every PD write of the clients registered here passes it first.
    fence: Fence,
    /// The PD clients' User-Agent, when not the default.
    user_agent: Option<String>,
}

impl PdRegistry {
    pub fn new(config: CacheConfig) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            config,
            clock: Arc::new(tikv_operator_pd::TokioClock),
            proxy: None,
            entries: Mutex::new(HashMap::new()),
            events,
            metrics: None,
            fence: Fence::open(),
            user_agent: None,
        }
    }

    /// The caches made here run their timers on `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn tikv_operator_pd::CacheClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Every PD client made here reports its requests to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Every registered cluster with its handle (the metrics read the caches' freshness).
    pub fn handles(&self) -> Vec<(ClusterKey, PdHandle)> {
        self.lock().iter().map(|(key, entry)| (key.clone(), entry.handle.clone())).collect()
    }

    /// The User-Agent of the PD clients registered from now on.
    pub fn set_user_agent(&mut self, user_agent: String) {
        self.user_agent = Some(user_agent);
    }

    /// Puts every PD write of the clients registered from now on behind `fence`.
    pub fn set_fence(&mut self, fence: Fence) {
        self.fence = fence;
    }

    /// Sends every PD request through this HTTP proxy instead of the environment's.
    pub fn with_proxy(mut self, proxy: Option<String>) -> Self {
        self.proxy = proxy;
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ClusterKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers (or keeps) the cluster's PD at `url`. Idempotent: the same URL keeps the
    /// running cache (new TLS material is swapped in place); another URL replaces it.
    /// Returns whether a new cache was started.
    pub fn register(&self, key: &ClusterKey, url: &str, tls: Option<TlsMaterial>) -> Result<bool, PdError> {
        let fingerprint = tls.as_ref().map(TlsMaterial::fingerprint);
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key)
            && entry.url == url
        {
            if entry.tls != fingerprint
                && let Some(client) = &entry.client
            {
                client.update_tls(tls)?;
                entry.tls = fingerprint;
            }
            return Ok(false);
        }
        let mut builder = PdClient::builder([url]);
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(proxy)?;
        }
        if let Some(tls) = tls {
            builder = builder.tls(tls);
        }
        if let Some(user_agent) = &self.user_agent {
            builder = builder.user_agent(user_agent.as_str());
        }
        let client = builder.build()?;
        if let Some(metrics) = &self.metrics {
            client.set_request_observer(Some(metrics.pd_observer(key)));
        }
        let cache = PdCache::for_client_on(client.clone(), self.config, self.clock.clone());
        let handle = PdHandle::new(cache, Arc::new(FencedPdWrite::new(Arc::new(client.clone()), self.fence.clone())));
        entries.insert(key.clone(), self.entry(key, url.to_owned(), Some(client), fingerprint, handle));
        Ok(true)
    }

    /// Registers a cache made elsewhere (tests: a cache over an in-memory PD).
    pub fn insert(&self, key: &ClusterKey, url: &str, handle: PdHandle) {
        let entry = self.entry(key, url.to_owned(), None, None, handle);
        self.lock().insert(key.clone(), entry);
    }

    fn entry(
        &self,
        key: &ClusterKey,
        url: String,
        client: Option<PdClient>,
        tls: Option<Fingerprint>,
        handle: PdHandle,
    ) -> Entry {
        let forwarder =
            tokio::spawn(forward(key.clone(), handle.cache.subscribe(), self.events.clone())).abort_handle();
        Entry { url, client, tls, handle, forwarder }
    }

    pub fn get(&self, key: &ClusterKey) -> Option<PdHandle> {
        self.lock().get(key).map(|e| e.handle.clone())
    }

    /// The URL a cluster is registered with.
    pub fn url(&self, key: &ClusterKey) -> Option<String> {
        self.lock().get(key).map(|e| e.url.clone())
    }

    /// The fingerprint of the TLS material the cluster's PD client uses (`None`: plain
    /// HTTP, or not registered).
    pub fn tls_fingerprint(&self, key: &ClusterKey) -> Option<Fingerprint> {
        self.lock().get(key).and_then(|e| e.tls)
    }

    /// Stops polling the cluster's PD; returns whether it was registered.
    pub fn drop_cluster(&self, key: &ClusterKey) -> bool {
        self.lock().remove(key).is_some()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ClusterPdEvent> {
        self.events.subscribe()
    }
}

async fn forward(cluster: ClusterKey, mut from: broadcast::Receiver<PdEvent>, to: broadcast::Sender<ClusterPdEvent>) {
    loop {
        let event = match from.recv().await {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(_)) => None,
            Err(RecvError::Closed) => return,
        };
        // Nobody listening is fine.
        let _ = to.send(ClusterPdEvent { cluster: cluster.clone(), event });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registering_is_idempotent_and_a_new_url_replaces_the_cache() {
        let registry = PdRegistry::new(CacheConfig::default());
        let key = ClusterKey::new("ns", "basic");
        assert!(registry.get(&key).is_none());
        assert!(registry.register(&key, "http://127.0.0.1:9", None).unwrap());
        assert!(!registry.register(&key, "http://127.0.0.1:9", None).unwrap());
        assert_eq!(registry.url(&key).as_deref(), Some("http://127.0.0.1:9"));
        assert!(registry.register(&key, "http://127.0.0.1:10", None).unwrap());
        assert_eq!(registry.url(&key).as_deref(), Some("http://127.0.0.1:10"));
        assert!(registry.drop_cluster(&key));
        assert!(!registry.drop_cluster(&key));
        assert!(registry.get(&key).is_none());
    }

    #[tokio::test]
    async fn a_bad_url_is_a_typed_error() {
        let registry = PdRegistry::new(CacheConfig::default());
        let error = registry.register(&ClusterKey::new("ns", "c"), "ftp://x", None).unwrap_err();
        assert!(matches!(error, PdError::Config(_)));
    }

    #[tokio::test]
    async fn cache_events_are_forwarded_with_their_cluster() {
        let registry = PdRegistry::new(CacheConfig::default());
        let mut events = registry.subscribe();
        let key = ClusterKey::new("ns", "basic");
        let pd = crate::testing::FakePd::bootstrapped().member("pd-0", 1).leader("pd-0");
        registry.insert(&key, "http://pd", pd.handle());
        let first = events.recv().await.unwrap();
        assert_eq!(first.cluster, key);
        assert!(first.event.is_some());
    }
}

/// The PD waits objects hold across passes: while an object waits on PD (a member to
/// join, a store to come up), its cluster's cache polls fast; once it stops waiting,
/// or goes, the wait is released.
#[derive(Default)]
pub struct PdWaits {
    waits: Mutex<HashMap<String, tikv_operator_pd::WaitGuard>>,
}

impl PdWaits {
    /// `key` (the object) waits on `cache` for `reason`; an existing wait is kept.
    pub fn waiting(&self, key: &str, cache: &PdCache, reason: &str) {
        let mut waits = self.waits.lock().unwrap_or_else(PoisonError::into_inner);
        if !waits.contains_key(key) {
            waits.insert(key.to_string(), cache.register_wait(format!("{key}: {reason}")));
        }
    }

    /// `key` no longer waits.
    pub fn done(&self, key: &str) {
        self.waits.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    pub fn is_waiting(&self, key: &str) -> bool {
        self.waits.lock().unwrap_or_else(PoisonError::into_inner).contains_key(key)
    }
}
