//! The typed PD HTTP client.
//!
//! One [`PdClient`] per PD URL set (normally the cluster's PD client Service URL).
//! Every call has a timeout. Reads are retried with backoff on transient errors and
//! fail over to the next endpoint on any transport error; writes are sent once and
//! fail over only when the connection could not be made at all, so a write is never
//! delivered twice by this client.

mod config;
mod members;
mod online_config;
mod regions;
mod schedulers;
mod stores;

pub use online_config::flatten;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{PdError, Result, Subject, classify, excerpt};
use crate::tls::{Fingerprint, TlsMaterial, no_tls_config};

/// Default timeout of one PD call (tidb-operator uses the same).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Told whenever this client has sent a write to PD, so the PD cache refreshes at once.
pub trait WriteObserver: Send + Sync {
    fn write_sent(&self);
}

/// Told about every HTTP request this client sends: one per attempt on one endpoint
/// (a retried read or a failover shows as several). The operator's metrics implement it;
/// this crate stays free of any metrics library.
pub trait RequestObserver: Send + Sync {
    fn request_done(&self, request: &RequestDone<'_>);
}

/// One request as a [`RequestObserver`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDone<'a> {
    /// `GET`, `POST`, `DELETE`.
    pub method: &'a str,
    /// The path with its identifiers as placeholders (`/pd/api/v1/store/{id}`), never a
    /// raw ID or name: bounded, fit for a metric label. TiKV status-server calls are
    /// `/config` and `/metrics`.
    pub endpoint: &'static str,
    pub outcome: RequestOutcome,
    pub duration: Duration,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// An HTTP answer with this status (a status the caller accepts, such as 404 for
    /// "not evicted", is still its status here).
    Answered(u16),
    /// No answer within the client's timeout.
    Timeout,
    /// No answer: connection refused, reset, TLS failure.
    Transport,
}

impl RequestOutcome {
    /// `2xx`, `4xx`, `5xx`, `timeout`, `transport` (a metric label).
    pub fn class(self) -> &'static str {
        match self {
            RequestOutcome::Answered(200..=299) => "2xx",
            RequestOutcome::Answered(300..=399) => "3xx",
            RequestOutcome::Answered(400..=499) => "4xx",
            RequestOutcome::Answered(_) => "5xx",
            RequestOutcome::Timeout => "timeout",
            RequestOutcome::Transport => "transport",
        }
    }
}

/// Retries of idempotent reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 2, min_delay: Duration::from_millis(200), max_delay: Duration::from_secs(2) }
    }
}

/// Builds a [`PdClient`].
#[derive(Clone, Debug)]
pub struct PdClientBuilder {
    endpoints: Vec<String>,
    timeout: Duration,
    retry: RetryPolicy,
    tls: Option<TlsMaterial>,
    proxy: ProxySetting,
    user_agent: String,
}

/// How the client reaches PD: directly, through the proxies the environment names, or
/// through one given proxy (the same setting an HTTP client of any in-cluster service has).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    /// Honour `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (the default).
    System,
    /// Connect directly.
    Direct,
    /// Send every request through this HTTP proxy.
    Url(Url),
}

impl PdClientBuilder {
    /// Timeout of each call to one endpoint (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Use HTTPS with this CA and client certificate.
    pub fn tls(mut self, tls: TlsMaterial) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Whether to honour `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (default yes).
    pub fn system_proxy(mut self, enabled: bool) -> Self {
        self.proxy = if enabled { ProxySetting::System } else { ProxySetting::Direct };
        self
    }

    /// Sends every request through this HTTP proxy (`http://host:port`).
    pub fn proxy(mut self, proxy: &str) -> Result<Self> {
        let url = Url::parse(proxy).map_err(|e| PdError::Config(format!("invalid proxy URL {proxy:?}: {e}")))?;
        self.proxy = ProxySetting::Url(url);
        Ok(self)
    }

    /// The User-Agent of every request (default [`USER_AGENT`]); a replica may add its
    /// identity, so that PD's logs (and tests) tell replicas apart.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    pub fn build(self) -> Result<PdClient> {
        if self.endpoints.is_empty() {
            return Err(PdError::Config("no PD endpoint given".into()));
        }
        let default_scheme = if self.tls.is_some() { "https" } else { "http" };
        let endpoints =
            self.endpoints.iter().map(|raw| parse_endpoint(raw, default_scheme)).collect::<Result<Vec<_>>>()?;
        let transport = Transport::build(self.tls, self.timeout, &self.proxy, &self.user_agent)?;
        Ok(PdClient {
            shared: Arc::new(Shared {
                endpoints,
                preferred: AtomicUsize::new(0),
                timeout: self.timeout,
                retry: self.retry,
                proxy: self.proxy,
                user_agent: self.user_agent,
                transport: RwLock::new(transport),
                write_observer: RwLock::new(None),
                request_observer: RwLock::new(None),
            }),
        })
    }
}

fn parse_endpoint(raw: &str, default_scheme: &str) -> Result<Url> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("{default_scheme}://{raw}") };
    let url = Url::parse(&with_scheme).map_err(|e| PdError::Config(format!("invalid PD URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(PdError::Config(format!("invalid PD URL {raw:?}: need http(s)://host[:port]")));
    }
    Ok(url)
}

struct Transport {
    http: reqwest::Client,
    tls: Option<TlsMaterial>,
}

/// User agent of every PD request: `tikv-operator/<version>`.
pub const USER_AGENT: &str = concat!("tikv-operator/", env!("CARGO_PKG_VERSION"));

impl Transport {
    fn build(tls: Option<TlsMaterial>, timeout: Duration, proxy: &ProxySetting, user_agent: &str) -> Result<Self> {
        let tls_config = match &tls {
            Some(material) => material.client_config(),
            None => no_tls_config(),
        }
        .map_err(|e| PdError::Config(e.to_string()))?;
        let http = Transport::client(tls_config, timeout, proxy, user_agent, |b| {
            // The cache's polls read one request after another: one idle connection is
            // all a cluster keeps (more come and go for requests made at once).
            b.pool_idle_timeout(Duration::from_secs(60)).pool_max_idle_per_host(1)
        })?;
        Ok(Transport { http, tls })
    }

    fn client(
        tls_config: rustls::ClientConfig,
        timeout: Duration,
        proxy: &ProxySetting,
        user_agent: &str,
        tune: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client> {
        // The user agent names the operator in PD's logs and lets tests attribute writes.
        let mut builder = reqwest::Client::builder()
            .user_agent(user_agent)
            .tls_backend_preconfigured(tls_config)
            .timeout(timeout)
            .connect_timeout(timeout);
        builder = tune(builder);
        match proxy {
            ProxySetting::System => {}
            ProxySetting::Direct => builder = builder.no_proxy(),
            ProxySetting::Url(url) => {
                let proxy = reqwest::Proxy::all(url.as_str())
                    .map_err(|e| PdError::Config(format!("invalid proxy URL {url}: {e}")))?;
                builder = builder.proxy(proxy);
            }
        }
        builder.build().map_err(|e| PdError::Config(format!("cannot build HTTP client: {e}")))
    }
}

struct Shared {
    endpoints: Vec<Url>,
    /// The endpoint that answered last; tried first.
    preferred: AtomicUsize,
    timeout: Duration,
    retry: RetryPolicy,
    proxy: ProxySetting,
    user_agent: String,
    transport: RwLock<Transport>,
    write_observer: RwLock<Option<Arc<dyn WriteObserver>>>,
    request_observer: RwLock<Option<Arc<dyn RequestObserver>>>,
}

/// The typed PD client. Cheap to clone; clones share connections, TLS and the write observer.
#[derive(Clone)]
pub struct PdClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdClient")
            .field("endpoints", &self.shared.endpoints.iter().map(Url::as_str).collect::<Vec<_>>())
            .field("timeout", &self.shared.timeout)
            .field("tls", &self.tls_fingerprint())
            .finish()
    }
}

/// One PD request as the call functions describe it.
pub(crate) struct Call {
    pub method: Method,
    /// Starting with `/pd/api/`; dynamic segments already escaped with [`segment`].
    pub path: String,
    /// The path with placeholders for its identifiers (what observers see).
    pub endpoint: &'static str,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    pub subject: Subject,
    /// Writes are never retried and fail over only when nothing was sent.
    pub write: bool,
    /// Non-2xx statuses the caller interprets itself instead of as errors.
    pub accept: &'static [u16],
}

impl Call {
    /// A read of a fixed path.
    pub fn get(path: &'static str) -> Self {
        Call::get_at(path, path)
    }

    /// A read of `path`, an instance of the template `endpoint` (`/pd/api/v1/store/{id}`).
    pub fn get_at(endpoint: &'static str, path: impl Into<String>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            endpoint,
            query: Vec::new(),
            body: None,
            subject: Subject::None,
            write: false,
            accept: &[],
        }
    }

    /// A write to a fixed path.
    pub fn write(method: Method, path: &'static str) -> Self {
        Call::write_at(method, path, path)
    }

    /// A write to `path`, an instance of the template `endpoint`.
    pub fn write_at(method: Method, endpoint: &'static str, path: impl Into<String>) -> Self {
        Call { method, write: true, ..Call::get_at(endpoint, path) }
    }

    pub fn subject(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    pub fn json_body(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    pub fn accept(mut self, statuses: &'static [u16]) -> Self {
        self.accept = statuses;
        self
    }
}

/// A PD answer with a 2xx or accepted status.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Percent-encodes one path segment (member names, scheduler names).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl PdClient {
    /// A builder for a client of these PD URLs (`http://host:2379`; a URL without a
    /// scheme gets `https` when TLS is set, else `http`).
    pub fn builder<I, S>(endpoints: I) -> PdClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        PdClientBuilder {
            endpoints: endpoints.into_iter().map(|s| s.as_ref().to_owned()).collect(),
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            tls: None,
            proxy: ProxySetting::System,
            user_agent: USER_AGENT.to_owned(),
        }
    }

    /// A plain-HTTP client with the defaults.
    pub fn new<I, S>(endpoints: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::builder(endpoints).build()
    }

    /// An HTTPS client with the defaults.
    pub fn with_tls<I, S>(endpoints: I, tls: TlsMaterial) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::builder(endpoints).tls(tls).build()
    }

    pub fn endpoints(&self) -> &[Url] {
        &self.shared.endpoints
    }

    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// The fingerprint of the TLS material in use, `None` for plain HTTP.
    pub fn tls_fingerprint(&self) -> Option<Fingerprint> {
        self.read_transport(|t| t.tls.as_ref().map(TlsMaterial::fingerprint))
    }

    /// Switches to new TLS material (or to plain HTTP) if it differs from the current
    /// one, rebuilding the connection pool; every clone of this client (and the PD
    /// cache using it) follows. Returns whether anything changed.
    pub fn update_tls(&self, tls: Option<TlsMaterial>) -> Result<bool> {
        let wanted = tls.as_ref().map(TlsMaterial::fingerprint);
        if wanted == self.tls_fingerprint() {
            return Ok(false);
        }
        let transport = Transport::build(tls, self.shared.timeout, &self.shared.proxy, &self.shared.user_agent)?;
        *self.shared.transport.write().unwrap_or_else(PoisonError::into_inner) = transport;
        tracing::info!(endpoints = ?self.shared.endpoints, tls = ?wanted, "PD client TLS material changed; client rebuilt");
        Ok(true)
    }

    /// The certificate the server at `base` (`https://host:port`) presents now: a
    /// `GET path` over a new connection of a client made for this one check (never a
    /// pooled connection, which would show the certificate of an older handshake),
    /// trusting and presenting what every request of this client does, through the same
    /// proxy. Any HTTP answer will do: only the handshake is looked at.
    pub async fn serving_certificate(&self, base: &str, path: &'static str) -> Result<crate::CertificateSummary> {
        let mut url = Url::parse(base).map_err(|e| PdError::Config(format!("invalid URL {base:?}: {e}")))?;
        if url.scheme() != "https" {
            return Err(PdError::Config(format!("{base} is not an https:// URL: no certificate to look at")));
        }
        let material = self.read_transport(|t| t.tls.clone());
        let material = material.ok_or_else(|| PdError::Config("the client has no TLS material".into()))?;
        url.set_path(path);
        let endpoint = base.trim_end_matches('/').to_owned();
        let seen = Arc::new(std::sync::Mutex::new(None));
        let config = material.recording_client_config(seen.clone()).map_err(|e| PdError::Config(e.to_string()))?;
        let probe = Transport::client(config, self.shared.timeout, &self.shared.proxy, &self.shared.user_agent, |b| {
            b.pool_max_idle_per_host(0)
        })?;
        let observer = self.shared.request_observer.read().unwrap_or_else(PoisonError::into_inner).clone();
        let started = tokio::time::Instant::now();
        let result = probe.get(url).send().await;
        if let Some(observer) = observer {
            let outcome = match &result {
                Ok(response) => RequestOutcome::Answered(response.status().as_u16()),
                Err(e) if e.is_timeout() => RequestOutcome::Timeout,
                Err(_) => RequestOutcome::Transport,
            };
            observer.request_done(&RequestDone { method: "GET", endpoint: path, outcome, duration: started.elapsed() });
        }
        result.map_err(|e| {
            if e.is_timeout() {
                PdError::Timeout { endpoint: endpoint.clone(), path: path.to_owned(), timeout: self.shared.timeout }
            } else {
                PdError::Transport { endpoint: endpoint.clone(), path: path.to_owned(), source: Arc::new(e) }
            }
        })?;
        let der = seen.lock().unwrap_or_else(PoisonError::into_inner).take();
        let der = der.ok_or_else(|| PdError::Config(format!("{endpoint} presented no certificate")))?;
        crate::CertificateSummary::from_der(&der)
            .map_err(|e| PdError::Config(format!("the certificate {endpoint} presents: {e}")))
    }

    /// Installs (or removes) the observer told about every request.
    pub fn set_request_observer(&self, observer: Option<Arc<dyn RequestObserver>>) {
        *self.shared.request_observer.write().unwrap_or_else(PoisonError::into_inner) = observer;
    }

    /// Installs (or removes) the observer told about every write.
    pub fn set_write_observer(&self, observer: Option<Arc<dyn WriteObserver>>) {
        *self.shared.write_observer.write().unwrap_or_else(PoisonError::into_inner) = observer;
    }

    fn read_transport<T>(&self, f: impl FnOnce(&Transport) -> T) -> T {
        f(&self.shared.transport.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn http(&self) -> reqwest::Client {
        self.read_transport(|t| t.http.clone())
    }

    /// Runs a call against the client's endpoints.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Answer> {
        self.execute_on(call, None).await
    }

    /// Runs a call against one given base URL (no failover), e.g. one PD member.
    pub(crate) async fn execute_on(&self, call: &Call, base: Option<&Url>) -> Result<Answer> {
        if call.write {
            let result = self.attempt(call, base).await;
            let nothing_sent = matches!(&result, Err(PdError::Transport { source, .. }) if source.is_connect());
            if !nothing_sent {
                self.notify_write();
            }
            return result;
        }
        let policy = self.shared.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.max_retries)
            .with_jitter();
        (|| self.attempt(call, base))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(PdError::is_retryable)
            .notify(|error, after| tracing::debug!(path = %call.path, %error, ?after, "PD read failed; retrying"))
            .await
    }

    fn notify_write(&self) {
        let observer = self.shared.write_observer.read().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(observer) = observer {
            observer.write_sent();
        }
    }

    /// One attempt: the request on the endpoints in turn, then the status check.
    async fn attempt(&self, call: &Call, base: Option<&Url>) -> Result<Answer> {
        let answer = match base {
            Some(url) => self.send_once(call, url).await?,
            None => self.send_with_failover(call).await?,
        };
        if (200..300).contains(&answer.status) || call.accept.contains(&answer.status) {
            Ok(answer)
        } else {
            Err(classify(answer.status, &answer.body, &call.subject, &call.path))
        }
    }

    async fn send_with_failover(&self, call: &Call) -> Result<Answer> {
        let endpoints = &self.shared.endpoints;
        let start = self.shared.preferred.load(Ordering::Relaxed) % endpoints.len();
        let mut last_error = None;
        for offset in 0..endpoints.len() {
            let index = (start + offset) % endpoints.len();
            match self.send_once(call, &endpoints[index]).await {
                Ok(answer) => {
                    self.shared.preferred.store(index, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(error) => {
                    let may_fail_over = match &error {
                        PdError::Transport { source, .. } if source.is_connect() => true,
                        PdError::Transport { .. } | PdError::Timeout { .. } => !call.write,
                        _ => false,
                    };
                    if !may_fail_over {
                        return Err(error);
                    }
                    tracing::debug!(endpoint = %endpoints[index], %error, "PD endpoint failed; trying the next");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| PdError::Config("no PD endpoint".into())))
    }

    async fn send_once(&self, call: &Call, base: &Url) -> Result<Answer> {
        let observer = self.shared.request_observer.read().unwrap_or_else(PoisonError::into_inner).clone();
        let Some(observer) = observer else {
            return self.send_unobserved(call, base).await;
        };
        let started = tokio::time::Instant::now();
        let result = self.send_unobserved(call, base).await;
        let outcome = match &result {
            Ok(answer) => RequestOutcome::Answered(answer.status),
            Err(PdError::Timeout { .. }) => RequestOutcome::Timeout,
            Err(_) => RequestOutcome::Transport,
        };
        observer.request_done(&RequestDone {
            method: call.method.as_str(),
            endpoint: call.endpoint,
            outcome,
            duration: started.elapsed(),
        });
        result
    }

    async fn send_unobserved(&self, call: &Call, base: &Url) -> Result<Answer> {
        let mut url = base.clone();
        url.set_path(&call.path);
        url.set_query(None);
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &call.query {
                pairs.append_pair(key, value);
            }
        }
        let endpoint = base.as_str().trim_end_matches('/').to_owned();
        let transport_error = |e: reqwest::Error| {
            if e.is_timeout() {
                PdError::Timeout { endpoint: endpoint.clone(), path: call.path.clone(), timeout: self.shared.timeout }
            } else {
                PdError::Transport { endpoint: endpoint.clone(), path: call.path.clone(), source: Arc::new(e) }
            }
        };
        let mut request = self.http().request(call.method.clone(), url);
        if let Some(body) = &call.body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        Ok(Answer { status, body: body.to_vec() })
    }
}

/// Decodes a JSON answer.
pub(crate) fn decode<T: DeserializeOwned>(path: &str, answer: &Answer) -> Result<T> {
    serde_json::from_slice(&answer.body).map_err(|e| PdError::Decode {
        path: path.to_owned(),
        message: e.to_string(),
        excerpt: excerpt(&answer.body),
    })
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;
