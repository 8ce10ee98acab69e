//! `tikv-operator run`: connect, elect a leader, start the five controllers and the
//! metrics/health server, stop on SIGTERM or Ctrl-C.
//!
//! With leader election (the default) a replica first stands by until it holds the
//! Lease ([`crate::leader`]); only then does it start its watches and controllers.
//! Losing the Lease stops it at once: [`run`] returns [`Error::LeadershipLost`] (the
//! process exits non-zero and Kubernetes restarts it as a standby), and the fence
//! ([`crate::fence`]) refuses any PD or Kubernetes write from then on. On SIGTERM it
//! stops taking new reconciles, lets those in flight finish (bounded by
//! [`RunConfig::shutdown_grace`]) while still renewing, then releases the Lease so a
//! standby takes over at once.
//!
//! `/readyz` answers 200 while the replica does its job: standing by (it must not be
//! restarted by its readiness probe, nor hold up a rolling update), or leading with its
//! watch caches filled; 503 while it starts, while a new leader fills its caches, and
//! once it stops. `/healthz` answers 200 while the process serves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::FutureExt;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::context::{Clock, Context, OperatorConfig, SystemClock};
use crate::controller::Shutdown;
use crate::error::Error;
use crate::fence::{Fence, FenceLayer};
use crate::leader::{Elector, LeaderElectionConfig};
use crate::metrics::Metrics;
use crate::telemetry::LogFormat;

/// The User-Agent of the operator's Kubernetes and PD requests, without an identity.
pub const USER_AGENT: &str = concat!("tikv-operator/", env!("CARGO_PKG_VERSION"));

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// A kubeconfig file; without one, the in-cluster or inferred configuration.
    pub kubeconfig: Option<PathBuf>,
    pub operator: OperatorConfig,
    pub log_format: LogFormat,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// `None` runs the controllers at once, as the only replica.
    pub leader_election: Option<LeaderElectionConfig>,
    /// On SIGTERM, how long reconciles in flight get to finish before the Lease is
    /// released anyway.
    pub shutdown_grace: Duration,
}

async fn kube_config(kubeconfig: Option<&PathBuf>) -> Result<kube::Config, Error> {
    match kubeconfig {
        Some(path) => {
            let file =
                Kubeconfig::read_from(path).map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))
        }
        None => kube::Config::infer().await.map_err(|e| Error::Config(e.to_string())),
    }
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, Error> {
    Client::try_from(kube_config(kubeconfig).await?).map_err(Error::Kube)
}

/// A client whose requests name us (`user_agent`) and whose writes pass `fence`.
fn fenced_client(mut config: kube::Config, user_agent: &str, fence: Option<&Fence>) -> Result<Client, Error> {
    let agent = header::HeaderValue::from_str(user_agent)
        .map_err(|e| Error::Config(format!("User-Agent {user_agent:?}: {e}")))?;
    config.headers.push((header::USER_AGENT, agent));
    let builder = kube::client::ClientBuilder::try_from(config).map_err(Error::Kube)?;
    Ok(match fence {
        Some(fence) => builder.with_layer(&FenceLayer(fence.clone())).build(),
        None => builder.build(),
    })
}

/// A future that resolves on SIGTERM or Ctrl-C.
pub fn signal_shutdown() -> Shutdown {
    async {
        let ctrl_c = async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::warn!(%error, "cannot listen for Ctrl-C");
                futures::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    futures::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let term = futures::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
        tracing::info!("shutting down");
    }
    .boxed()
    .shared()
}

/// What `/readyz` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Starting = 0,
    StandingBy = 1,
    /// Leading (or the only replica), watch caches filling.
    Filling = 2,
    Serving = 3,
    Stopping = 4,
}

#[derive(Default)]
struct Readiness(AtomicU8);

impl Readiness {
    fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }

    fn phase(&self) -> Phase {
        match self.0.load(Ordering::Relaxed) {
            1 => Phase::StandingBy,
            2 => Phase::Filling,
            3 => Phase::Serving,
            4 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }
}

/// Runs the operator until SIGTERM or Ctrl-C ([`Error::LeadershipLost`] when another
/// replica took the Lease over).
pub async fn run(config: RunConfig) -> Result<(), Error> {
    crate::telemetry::init(config.log_format);
    tikv_operator_pd::install_default_crypto_provider();
    let kube = kube_config(config.kubeconfig.as_ref()).await?;
    let election = config.leader_election.clone();
    if let Some(election) = &election {
        election.validate().map_err(Error::Config)?;
    }
    let user_agent = match &election {
        Some(election) => format!("{USER_AGENT} ({})", election.identity),
        None => USER_AGENT.to_owned(),
    };
    let fence = election.as_ref().map(LeaderElectionConfig::fence);
    let client = fenced_client(kube.clone(), &user_agent, fence.as_ref())?;
    let metrics = Arc::new(Metrics::default());
    let mut context =
        Context::new(client, config.operator, Arc::new(SystemClock), metrics).with_pd_user_agent(user_agent.clone());
    if let Some(fence) = &fence {
        context = context.with_fence(fence.clone());
    }
    let ctx = Arc::new(context);
    let shutdown = signal_shutdown();
    let ready = Arc::new(Readiness::default());
    let server =
        config.metrics_addr.map(|addr| tokio::spawn(serve(addr, ctx.clone(), ready.clone(), shutdown.clone())));
    let result = match (election, fence) {
        (Some(election), Some(fence)) => {
            // The elector writes the Lease while the fence is closed: its client is not fenced.
            let elector = Elector::new(fenced_client(kube, &user_agent, None)?, election, fence);
            lead(&elector, ctx, shutdown, &ready, config.shutdown_grace).await
        }
        _ => {
            tracing::info!(namespace = ?ctx.config.namespace, "starting controllers (no leader election)");
            tokio::join!(run_controllers(ctx.clone(), shutdown.clone()), serving_once_filled(&ctx, &ready));
            Ok(())
        }
    };
    ready.set(Phase::Stopping);
    if let Some(server) = server {
        if result.is_err() {
            server.abort();
        }
        match server.await {
            Ok(served) => served?,
            Err(error) if error.is_cancelled() => {}
            Err(error) => tracing::warn!(%error, "metrics server task failed"),
        }
    }
    result
}

/// Marks the replica Serving once its caches are filled.
async fn serving_once_filled(ctx: &Context, ready: &Readiness) {
    ready.set(Phase::Filling);
    if ctx.caches.ready().await.is_ok() {
        ready.set(Phase::Serving);
    }
}

/// Stands by until we hold the Lease, then runs the controllers while renewing it.
async fn lead(
    elector: &Elector,
    ctx: Arc<Context>,
    shutdown: Shutdown,
    ready: &Readiness,
    grace: Duration,
) -> Result<(), Error> {
    let identity = &elector.config().identity;
    tracing::info!(%identity, lease = %elector.config().lease_name, "standing by until this replica holds the lease");
    ready.set(Phase::StandingBy);
    tokio::select! {
        () = elector.acquire() => {}
        () = shutdown.clone() => return Ok(()),
    }
    tracing::info!(%identity, namespace = ?ctx.config.namespace, "leading: starting controllers");
    let controllers = async {
        tokio::join!(run_controllers(ctx.clone(), shutdown.clone()), serving_once_filled(&ctx, ready));
    };
    let hold = elector.hold();
    tokio::pin!(controllers, hold);
    // Losing the Lease drops the controllers (and every reconcile in flight) at once.
    tokio::select! {
        lost = &mut hold => return Err(Error::LeadershipLost(lost)),
        () = &mut controllers => {}
        () = shutdown.clone() => {
            ready.set(Phase::Stopping);
            tokio::select! {
                lost = &mut hold => return Err(Error::LeadershipLost(lost)),
                () = &mut controllers => tracing::info!("reconciles in flight finished"),
                () = tokio::time::sleep(grace) => {
                    tracing::warn!(grace = ?grace, "reconciles still in flight after the grace period; releasing anyway");
                }
            }
        }
    }
    match tokio::time::timeout(elector.config().renew_deadline, elector.release()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "cannot release the lease; a standby takes over once it expires"),
        Err(_) => tracing::warn!("releasing the lease timed out; a standby takes over once it expires"),
    }
    Ok(())
}

/// Runs the controllers against the cluster a kubeconfig names until `shutdown`
/// resolves, without the metrics server or signal handling (the playground's way in).
pub async fn run_until(kubeconfig: PathBuf, operator: OperatorConfig, shutdown: Shutdown) -> Result<(), Error> {
    run_until_with_clock(kubeconfig, operator, Arc::new(SystemClock), shutdown).await
}

/// [`run_until`] reading time from `clock`: where the cluster's own clock is not the
/// machine's (a simulated cluster running faster than real time), ages such as
/// minReadySeconds must be measured on the clock that stamped the conditions.
pub async fn run_until_with_clock(
    kubeconfig: PathBuf,
    operator: OperatorConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    run_until_with_metrics(kubeconfig, operator, clock, Arc::new(Metrics::default()), shutdown).await
}

/// [`run_until_with_clock`] feeding `metrics`, which the caller reads (tests).
pub async fn run_until_with_metrics(
    kubeconfig: PathBuf,
    operator: OperatorConfig,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    tikv_operator_pd::install_default_crypto_provider();
    let client = client(Some(&kubeconfig)).await?;
    let ctx = Arc::new(Context::new(client, operator, clock, metrics));
    run_controllers(ctx, shutdown).await;
    Ok(())
}

/// [`run_until_with_clock`] serving `/metrics`, `/healthz` and `/readyz` on `listener`
/// too (the playground's `--metrics-addr`).
pub async fn run_until_serving(
    kubeconfig: PathBuf,
    operator: OperatorConfig,
    clock: Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> Result<(), Error> {
    tikv_operator_pd::install_default_crypto_provider();
    let client = client(Some(&kubeconfig)).await?;
    let ctx = Arc::new(Context::new(client, operator, clock, Arc::new(Metrics::default())));
    let ready = Arc::new(Readiness::default());
    let app = router(ctx.clone(), ready.clone());
    let stop = shutdown.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop).await });
    tokio::join!(run_controllers(ctx.clone(), shutdown), serving_once_filled(&ctx, &ready));
    match server.await {
        Ok(served) => Ok(served?),
        Err(error) => {
            tracing::warn!(%error, "metrics server task failed");
            Ok(())
        }
    }
}

/// Runs the five controllers on `ctx` until `shutdown` resolves (the playground and
/// tests call this with their own context and shutdown).
pub async fn run_controllers(ctx: Arc<Context>, shutdown: Shutdown) {
    ctx.metrics.attach(&ctx);
    let _watchers = ctx.caches.start();
    tokio::select! {
        ready = ctx.caches.ready() => {
            if let Err(error) = ready {
                tracing::error!(%error, "the watch caches stopped before they were filled");
                return;
            }
            tracing::info!("watch caches filled; starting controllers");
        }
        () = shutdown.clone() => return,
    }
    tokio::join!(
        crate::cluster::run(ctx.clone(), shutdown.clone()),
        crate::pdgroup::run(ctx.clone(), shutdown.clone()),
        crate::pd::run(ctx.clone(), shutdown.clone()),
        crate::tikvgroup::run(ctx.clone(), shutdown.clone()),
        crate::tikv::run(ctx.clone(), shutdown),
    );
    // The Events of the last passes, if the API server takes them soon.
    if tokio::time::timeout(Duration::from_secs(5), ctx.flush_events()).await.is_err() {
        tracing::warn!("some Events were not sent before shutdown");
    }
}

#[derive(Clone)]
struct ServerState {
    ctx: Arc<Context>,
    ready: Arc<Readiness>,
}

async fn serve(addr: SocketAddr, ctx: Arc<Context>, ready: Arc<Readiness>, shutdown: Shutdown) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(ctx, ready)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

fn router(ctx: Arc<Context>, ready: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(ServerState { ctx, ready })
}

async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.ctx.metrics.encode())
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    match state.ready.phase() {
        Phase::Serving => (StatusCode::OK, "ok: leading"),
        Phase::StandingBy => (StatusCode::OK, "ok: standing by"),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "starting"),
        Phase::Filling => (StatusCode::SERVICE_UNAVAILABLE, "filling the watch caches"),
        Phase::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_and_metrics_are_served() {
        let ctx = crate::testing::offline_context();
        let ready = Arc::new(Readiness::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(ctx, ready.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let get = |path: &str| {
            let url = format!("http://{addr}{path}");
            async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let request = format!(
                    "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    url.trim_start_matches(&format!("http://{addr}"))
                );
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).await.unwrap();
                response
            }
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        ready.set(Phase::StandingBy);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"), "a standby is ready");
        ready.set(Phase::Filling);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        ready.set(Phase::Serving);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        ready.set(Phase::Stopping);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        assert!(get("/metrics").await.contains("openmetrics-text"));
        server.abort();
    }
}
