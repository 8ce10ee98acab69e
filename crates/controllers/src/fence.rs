//! Fencing: a leader that may have lost its lease does not write.
//!
//! The leader elector ([`crate::leader`]) feeds a [`Fence`] the local time at which each
//! successful renewal of the Lease was *sent*. Another replica can take the Lease over
//! only once it has seen the record unchanged for a whole lease duration on its own
//! clock, and it cannot have seen our renewal before we sent it; so until
//! `sent + lease duration` nobody else leads. The fence stays open until
//! `sent + lease duration - margin`: the margin covers the time between the check and
//! the write reaching its server (a PD call's timeout is 5 s) and clocks that run at
//! slightly different rates. It is judged on the monotonic clock, which keeps running
//! while the process is stopped (SIGSTOP), so a paused leader that wakes finds it closed.
//!
//! Two guards use it: [`FencedPdWrite`] before every mutating PD call, and
//! [`FenceLayer`] before every mutating Kubernetes request of the controllers' client
//! (the elector writes the Lease through a client without it). Without leader
//! election the fence is [`Fence::open`] and never refuses.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures::future::{BoxFuture, Either, Ready};
use serde_json::{Map, Value};
use tikv_operator_pd::{PdError, PdWrite, RegionHealth, RegionVoters};
use tokio::time::Instant;

/// Why the fence refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotLeader {
    #[error("this replica has not acquired the leader-election lease")]
    NeverLed,
    #[error("this replica's lease may have passed to another ({0:?} beyond its safe end)")]
    LeaseMayHavePassed(Duration),
    #[error("this replica stopped leading")]
    Stopped,
}

impl From<NotLeader> for PdError {
    fn from(reason: NotLeader) -> Self {
        PdError::NotLeader(reason.to_string())
    }
}

#[derive(Debug)]
enum State {
    /// No leader election: always open.
    Open,
    /// Open until `until` (`None`: not leading yet); `stopped` once leadership ended.
    Lease { until: Option<Instant>, stopped: bool },
}

/// Whether this replica may write now. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct Fence {
    state: Arc<Mutex<State>>,
    lease_duration: Duration,
    margin: Duration,
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fence")
            .field("state", &*self.lock())
            .field("lease_duration", &self.lease_duration)
            .field("margin", &self.margin)
            .finish()
    }
}

impl Default for Fence {
    fn default() -> Self {
        Fence::open()
    }
}

impl Fence {
    /// Without leader election (the playground, tests): never refuses.
    pub fn open() -> Fence {
        Fence { state: Arc::new(Mutex::new(State::Open)), lease_duration: Duration::ZERO, margin: Duration::ZERO }
    }

    /// Closed until the elector reports a renewal; then open until that renewal was sent
    /// plus `lease_duration` minus `margin`.
    pub fn lease(lease_duration: Duration, margin: Duration) -> Fence {
        Fence { state: Arc::new(Mutex::new(State::Lease { until: None, stopped: false })), lease_duration, margin }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Lease was written with us as holder by a request sent at `sent`.
    pub fn renewed(&self, sent: Instant) {
        if let State::Lease { until, stopped: false } = &mut *self.lock() {
            let end = (sent + self.lease_duration).checked_sub(self.margin).unwrap_or(sent);
            *until = Some(until.map_or(end, |u| u.max(end)));
        }
    }

    /// Leadership ended (lost, or released on shutdown): closed for good.
    pub fn close(&self) {
        if let State::Lease { stopped, .. } = &mut *self.lock() {
            *stopped = true;
        }
    }

    /// Whether a write may be sent now.
    pub fn check(&self) -> Result<(), NotLeader> {
        self.check_at(Instant::now())
    }

    /// Whether a write may be sent at `now`.
    pub fn check_at(&self, now: Instant) -> Result<(), NotLeader> {
        match &*self.lock() {
            State::Open => Ok(()),
            State::Lease { stopped: true, .. } => Err(NotLeader::Stopped),
            State::Lease { until: None, .. } => Err(NotLeader::NeverLed),
            State::Lease { until: Some(until), .. } if now < *until => Ok(()),
            State::Lease { until: Some(until), .. } => Err(NotLeader::LeaseMayHavePassed(now - *until)),
        }
    }
}

/// The PD writer behind a [`Fence`]: every mutating call is checked right before it is
/// sent and refused with [`PdError::NotLeader`] when the fence is closed; reads pass.
pub struct FencedPdWrite {
    inner: Arc<dyn PdWrite>,
    fence: Fence,
}

impl FencedPdWrite {
    pub fn new(inner: Arc<dyn PdWrite>, fence: Fence) -> Self {
        FencedPdWrite { inner, fence }
    }

    /// Checks the fence, and only then makes the call.
    fn guard<'a, T: Send + 'a>(
        &'a self,
        write: impl FnOnce(&'a dyn PdWrite) -> BoxFuture<'a, Result<T, PdError>>,
    ) -> BoxFuture<'a, Result<T, PdError>> {
        match self.fence.check() {
            Ok(()) => {
                tracing::debug!("PD write allowed");
                write(self.inner.as_ref())
            }
            Err(reason) => {
                tracing::warn!(%reason, "PD write refused: not the leader");
                Box::pin(std::future::ready(Err(reason.into())))
            }
        }
    }
}

// The check runs when the call is made, right before the returned future sends it:
// every caller awaits the write at once (see `PdHandle`).
impl PdWrite for FencedPdWrite {
    fn delete_store(&self, id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.guard(|pd| pd.delete_store(id))
    }

    fn cancel_delete_store(&self, id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.guard(|pd| pd.cancel_delete_store(id))
    }

    fn add_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.guard(|pd| pd.add_evict_leader(store_id))
    }

    fn remove_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<bool, PdError>> {
        self.guard(|pd| pd.remove_evict_leader(store_id))
    }

    fn delete_member_by_id(&self, id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.guard(|pd| pd.delete_member_by_id(id))
    }

    fn delete_member_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), PdError>> {
        self.guard(|pd| pd.delete_member_by_name(name))
    }

    fn update_member_peer_urls<'a>(&'a self, id: u64, peer_urls: &'a [String]) -> BoxFuture<'a, Result<(), PdError>> {
        self.guard(|pd| pd.update_member_peer_urls(id, peer_urls))
    }

    fn transfer_leader<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), PdError>> {
        self.guard(|pd| pd.transfer_leader(name))
    }

    fn region_health(&self) -> BoxFuture<'_, Result<RegionHealth, PdError>> {
        self.inner.region_health()
    }

    fn schedulers(&self) -> BoxFuture<'_, Result<Vec<String>, PdError>> {
        self.inner.schedulers()
    }

    fn store_regions(&self, store_id: u64) -> BoxFuture<'_, Result<Vec<RegionVoters>, PdError>> {
        self.inner.store_regions(store_id)
    }

    fn store_config<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<Value, PdError>> {
        self.inner.store_config(status_url)
    }

    fn update_store_config<'a>(
        &'a self,
        status_url: &'a str,
        changes: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<(), PdError>> {
        self.guard(|pd| pd.update_store_config(status_url, changes))
    }

    fn store_leader_count<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<u64, PdError>> {
        self.inner.store_leader_count(status_url)
    }

    fn pd_config(&self) -> BoxFuture<'_, Result<Value, PdError>> {
        self.inner.pd_config()
    }

    fn update_pd_config<'a>(&'a self, key: &'a str, value: &'a Value) -> BoxFuture<'a, Result<(), PdError>> {
        self.guard(|pd| pd.update_pd_config(key, value))
    }

    fn set_store_labels<'a>(
        &'a self,
        id: u64,
        labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), PdError>> {
        self.guard(|pd| pd.set_store_labels(id, labels))
    }
    fn serving_certificate<'a>(
        &'a self,
        base: &'a str,
        path: &'static str,
    ) -> BoxFuture<'a, Result<tikv_operator_pd::CertificateSummary, PdError>> {
        self.inner.serving_certificate(base, path)
    }
}

/// A tower layer for the controllers' Kubernetes client: a mutating request (anything
/// but GET, HEAD, OPTIONS) is refused, never sent, while the fence is closed.
#[derive(Clone, Debug)]
pub struct FenceLayer(pub Fence);

impl<S> tower::Layer<S> for FenceLayer {
    type Service = FencedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FencedService { inner, fence: self.0.clone() }
    }
}

/// See [`FenceLayer`].
#[derive(Clone, Debug)]
pub struct FencedService<S> {
    inner: S,
    fence: Fence,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> tower::Service<http::Request<B>> for FencedService<S>
where
    S: tower::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future =
        Either<futures::future::MapErr<S::Future, fn(S::Error) -> BoxError>, Ready<Result<S::Response, BoxError>>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        use futures::TryFutureExt;
        let mutating = !matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        if mutating && let Err(reason) = self.fence.check() {
            tracing::warn!(%reason, method = %request.method(), uri = %request.uri(), "Kubernetes write refused");
            return Either::Right(futures::future::ready(Err(Box::new(reason))));
        }
        if mutating {
            tracing::debug!(method = %request.method(), uri = %request.uri(), "Kubernetes write allowed");
        }
        Either::Left(self.inner.call(request).map_err(Into::into as fn(S::Error) -> BoxError))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);
    const MARGIN: Duration = Duration::from_secs(5);

    #[test]
    fn without_leader_election_the_fence_is_always_open() {
        let fence = Fence::open();
        assert_eq!(fence.check(), Ok(()));
        fence.close();
        assert_eq!(fence.check(), Ok(()), "closing means nothing without an election");
    }

    #[test]
    fn closed_until_the_first_renewal_then_open_within_the_margin() {
        let t = Instant::now();
        let fence = Fence::lease(LEASE, MARGIN);
        assert_eq!(fence.check_at(t), Err(NotLeader::NeverLed));
        fence.renewed(t);
        assert_eq!(fence.check_at(t), Ok(()));
        assert_eq!(fence.check_at(t + Duration::from_millis(9_999)), Ok(()));
        // Past sent + lease - margin: another replica could take over within the margin.
        assert_eq!(fence.check_at(t + Duration::from_secs(10)), Err(NotLeader::LeaseMayHavePassed(Duration::ZERO)));
        assert_eq!(
            fence.check_at(t + Duration::from_secs(16)),
            Err(NotLeader::LeaseMayHavePassed(Duration::from_secs(6))),
            "expired"
        );
    }

    #[test]
    fn a_renewal_extends_and_an_older_one_does_not_shorten() {
        let t = Instant::now();
        let fence = Fence::lease(LEASE, MARGIN);
        fence.renewed(t + Duration::from_secs(8));
        assert_eq!(fence.check_at(t + Duration::from_secs(17)), Ok(()));
        fence.renewed(t);
        assert_eq!(fence.check_at(t + Duration::from_secs(17)), Ok(()), "a late answer to an older renewal");
        assert!(fence.check_at(t + Duration::from_secs(18)).is_err());
    }

    #[test]
    fn closed_for_good_once_leadership_ends() {
        let t = Instant::now();
        let fence = Fence::lease(LEASE, MARGIN);
        fence.renewed(t);
        fence.close();
        assert_eq!(fence.check_at(t), Err(NotLeader::Stopped));
        fence.renewed(t);
        assert_eq!(fence.check_at(t), Err(NotLeader::Stopped));
    }

    #[tokio::test]
    async fn pd_writes_are_refused_and_never_sent_while_reads_pass() {
        let pd = crate::testing::FakePd::bootstrapped().store(1, "tikv-0:20160", tikv_operator_pd::NodeState::Serving);
        let fence = Fence::lease(LEASE, MARGIN);
        let fenced = FencedPdWrite::new(Arc::new(pd.clone()), fence.clone());
        let error = fenced.delete_store(1).await.unwrap_err();
        assert!(matches!(error, PdError::NotLeader(_)), "{error}");
        assert!(error.to_string().contains("not the leader"), "{error}");
        assert!(fenced.add_evict_leader(1).await.is_err());
        assert!(fenced.set_store_labels(1, &BTreeMap::new()).await.is_err());
        assert!(fenced.update_pd_config("schedule.leader-schedule-limit", &Value::from(4)).await.is_err());
        assert!(pd.write_log().is_empty(), "nothing reached PD: {:?}", pd.write_log());
        assert!(fenced.pd_config().await.is_ok(), "reads are not fenced");

        fence.renewed(Instant::now());
        fenced.add_evict_leader(1).await.unwrap();
        assert_eq!(pd.write_log(), ["add_evict_leader(1)"]);
    }

    #[tokio::test]
    async fn kubernetes_writes_are_refused_and_reads_pass() {
        use tower::{Layer, Service, ServiceExt};
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let inner = tower::service_fn(move |request: http::Request<()>| {
            log.lock().unwrap().push(request.method().to_string());
            std::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(())))
        });
        let fence = Fence::lease(LEASE, MARGIN);
        let mut service = FenceLayer(fence.clone()).layer(inner);
        let request = |method: http::Method| http::Request::builder().method(method).body(()).unwrap();
        service.ready().await.unwrap().call(request(http::Method::GET)).await.unwrap();
        let refused = service.ready().await.unwrap().call(request(http::Method::PATCH)).await.unwrap_err();
        assert!(refused.to_string().contains("not acquired"), "{refused}");
        fence.renewed(Instant::now());
        service.ready().await.unwrap().call(request(http::Method::PUT)).await.unwrap();
        assert_eq!(*sent.lock().unwrap(), ["GET", "PUT"]);
    }
}
