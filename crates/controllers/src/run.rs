//! `tikv-operator run`: connect, start the five controllers and the metrics/health
//! server, stop on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
use crate::metrics::Metrics;
use crate::telemetry::LogFormat;

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// A kubeconfig file; without one, the in-cluster or inferred configuration.
    pub kubeconfig: Option<PathBuf>,
    pub operator: OperatorConfig,
    pub log_format: LogFormat,
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let file =
                Kubeconfig::read_from(path).map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| Error::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(Error::Kube)
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

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(config: RunConfig) -> Result<(), Error> {
    crate::telemetry::init(config.log_format);
    tikv_operator_pd::install_default_crypto_provider();
    let client = client(config.kubeconfig.as_ref()).await?;
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(client, config.operator, Arc::new(SystemClock), metrics));
    let shutdown = signal_shutdown();
    let ready = Arc::new(AtomicBool::new(false));
    let server =
        config.metrics_addr.map(|addr| tokio::spawn(serve(addr, ctx.clone(), ready.clone(), shutdown.clone())));
    tracing::info!(namespace = ?ctx.config.namespace, "starting controllers");
    ready.store(true, Ordering::Relaxed);
    run_controllers(ctx, shutdown).await;
    if let Some(server) = server {
        match server.await {
            Ok(result) => result?,
            Err(error) => tracing::warn!(%error, "metrics server task failed"),
        }
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
        crate::tikv::run(ctx, shutdown),
    );
}

#[derive(Clone)]
struct ServerState {
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
}

async fn serve(addr: SocketAddr, ctx: Arc<Context>, ready: Arc<AtomicBool>, shutdown: Shutdown) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, router(ctx, ready)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

fn router(ctx: Arc<Context>, ready: Arc<AtomicBool>) -> Router {
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
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_and_metrics_are_served() {
        let ctx = crate::testing::offline_context();
        let ready = Arc::new(AtomicBool::new(false));
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
        ready.store(true, Ordering::Relaxed);
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.contains("openmetrics-text"));
        server.abort();
    }
}
