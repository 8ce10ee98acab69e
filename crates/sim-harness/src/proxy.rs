//! An HTTP forward proxy into the simulated cluster, so that an unmodified client
//! (the operator binary) reaches simulated PD and TiKV with nothing but
//! `HTTP_PROXY=http://127.0.0.1:PORT` (and `HTTPS_PROXY` for `CONNECT` tunnels).
//!
//! Requests in absolute form (`GET http://basic-pd.db.svc:2379/pd/api/v1/stores`)
//! are resolved through kube-sim's DNS (a Service to its ready endpoints like
//! kube-proxy, a pod's DNS name to the pod) and forwarded to the real listener of
//! the simulated process at that pod address. A name that does not resolve, or an
//! address where nothing listens, gets `502 Bad Gateway` with a body saying why.
//!
//! Every write to PD (any method but GET/HEAD/OPTIONS to a PD client port) is recorded
//! with its client (User-Agent), so tests and the safety watcher can attribute PD
//! writes the way kube-sim's request log attributes Kubernetes writes. A test acts as
//! another PD client (an SRE with pd-ctl) through [`Proxy::pd_ctl`].
//!
//! A process simulated inside a pod (a preStop hook) gets its own listener
//! ([`Proxy::for_pod`]): there, names resolve through the pod's DNS search path and
//! `localhost` is the pod itself, as for a process in the pod's network namespace.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sim_clock::{SimClock, SimInstant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::clusters::PdClusters;
use crate::http::{BODY_LIMIT, HttpClient};
use crate::network::{NetError, Network, Route, Target};
use crate::pd_ctl::PdCtl;

/// A write to PD that went through the proxy.
#[derive(Clone, Debug)]
pub struct PdWrite {
    pub seq: u64,
    pub at: SimInstant,
    /// The User-Agent (empty when the client sent none).
    pub client: String,
    pub method: String,
    /// The URI as the client wrote it (`http://basic-pd.db.svc:2379/pd/api/v1/...`).
    pub uri: String,
    /// Path and query.
    pub path: String,
    pub body: Bytes,
    /// PD's answer, or [`UNANSWERED`].
    pub status: u16,
    /// The PD cluster (index in [`crate::PdClusters`]) it reached.
    pub cluster: usize,
    /// For a write to PD's scheduler API: the stores in the evict-leader scheduler just
    /// before the write was forwarded, i.e. what it found (whether an add created an
    /// entry or met one already there).
    pub evict_leader_before: Option<BTreeSet<u64>>,
}

/// The status of a logged PD write whose answer never came (the connection failed):
/// PD may or may not have applied it.
pub const UNANSWERED: u16 = 0;

/// The PD writes seen so far; cheap to clone.
#[derive(Clone, Default)]
pub struct PdWriteLog {
    inner: Arc<Mutex<Vec<PdWrite>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl PdWriteLog {
    fn push(&self, mut w: PdWrite) {
        let mut log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.seq = log.len() as u64;
        log.push(w);
        drop(log);
        self.changed.notify_waiters();
    }

    pub fn snapshot(&self) -> Vec<PdWrite> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes from `seq` on.
    pub fn since(&self, seq: u64) -> Vec<PdWrite> {
        let log = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().skip(usize::try_from(seq).unwrap_or(usize::MAX)).cloned().collect()
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

pub(crate) struct Ctx {
    net: Network,
    http: HttpClient,
    clock: SimClock,
    writes: PdWriteLog,
    clusters: Arc<PdClusters>,
}

/// Where requests come from: outside the cluster (`None`), or a process in this pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodOrigin {
    pub namespace: String,
    pub pod_ip: Ipv4Addr,
}

pub struct Proxy {
    addr: SocketAddr,
    ctx: Arc<Ctx>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Accepts connections until `rx` says stop, answering each request from `origin`.
fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    origin: Option<Arc<PodOrigin>>,
    mut rx: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let conn_rx = rx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let (ctx, origin) = (ctx.clone(), origin.clone());
                    let mut rx = conn_rx.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(ctx.clone(), origin.clone(), req));
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = rx.wait_for(|s| *s) => {}
                        }
                    });
                }
                _ = rx.wait_for(|s| *s) => break,
            }
        }
    })
}

/// The proxy as a process in one pod uses it; closed when dropped.
pub struct PodProxy {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl PodProxy {
    /// `http://127.0.0.1:PORT`, the pod process's `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for PodProxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Opens [`PodProxy`]s; cheap to clone.
#[derive(Clone)]
pub struct PodGateway(Arc<Ctx>);

impl PodGateway {
    /// A listener on 127.0.0.1 (any port) for the processes of the pod at `pod_ip` in
    /// `namespace`.
    pub async fn open(&self, namespace: &str, pod_ip: Ipv4Addr) -> std::io::Result<PodProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, rx) = watch::channel(false);
        let origin = PodOrigin { namespace: namespace.to_owned(), pod_ip };
        drop(serve(listener, self.0.clone(), Some(Arc::new(origin)), rx));
        Ok(PodProxy { addr, shutdown })
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 at `port` (0: any). `clusters` is where PD writes land.
    pub async fn start(net: Network, clusters: Arc<PdClusters>, clock: SimClock, port: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let writes = PdWriteLog::default();
        let ctx = Arc::new(Ctx { net, http: HttpClient::default(), clock, writes, clusters });
        let (shutdown, rx) = watch::channel(false);
        let task = serve(listener, ctx.clone(), None, rx);
        Ok(Proxy { addr, ctx, shutdown, task })
    }

    /// What opens the listeners of processes in pods (their writes are recorded here too).
    pub fn pod_gateway(&self) -> PodGateway {
        PodGateway(self.ctx.clone())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the value for `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pd_writes(&self) -> PdWriteLog {
        self.ctx.writes.clone()
    }

    /// A PD client other than the operator (an SRE with pd-ctl) talking to the PD at
    /// `pd_url` (`http://basic-pd.db.svc:2379`) through this proxy: its writes are
    /// recorded like any other, under its own User-Agent.
    pub fn pd_ctl(&self, pd_url: &str) -> PdCtl {
        PdCtl::new(self.ctx.clone(), pd_url)
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn bad_gateway(status: StatusCode, message: String) -> Response<Body> {
    let mut resp = Response::new(Body::from(format!("{message}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

async fn handle(
    ctx: Arc<Ctx>,
    origin: Option<Arc<PodOrigin>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    if req.method() == Method::CONNECT {
        return Ok(tunnel(ctx, origin.as_deref(), req).await);
    }
    Ok(forward(ctx, origin.as_deref(), req).await)
}

/// Finds the listener behind `host:port` as a client at `origin` would reach it.
fn dial(ctx: &Ctx, origin: Option<&PodOrigin>, host: &str, port: u16) -> Result<(SocketAddr, Route), NetError> {
    match origin {
        None => ctx.net.dial(None, host, port),
        Some(o) => {
            let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            let host = if loopback { o.pod_ip.to_string() } else { host.to_owned() };
            ctx.net.dial(Some(&o.namespace), &host, port)
        }
    }
}

/// `CONNECT host:port`: a TCP tunnel to the process at that address.
async fn tunnel(ctx: Arc<Ctx>, origin: Option<&PodOrigin>, req: Request<Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return bad_gateway(StatusCode::BAD_REQUEST, "sim-harness proxy: CONNECT needs host:port".into());
    };
    let port = authority.port_u16().unwrap_or(443);
    let real = match dial(&ctx, origin, authority.host(), port) {
        Ok((real, _)) => real,
        Err(e) => return bad_gateway(StatusCode::BAD_GATEWAY, format!("sim-harness proxy: {authority}: {e}")),
    };
    let upstream = match TcpStream::connect(real).await {
        Ok(s) => s,
        Err(e) => return bad_gateway(StatusCode::BAD_GATEWAY, format!("sim-harness proxy: {authority}: {e}")),
    };
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let mut client = TokioIo::new(upgraded);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
    });
    Response::new(Body::empty())
}

async fn forward(ctx: Arc<Ctx>, origin: Option<&PodOrigin>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return bad_gateway(StatusCode::BAD_REQUEST, format!("sim-harness proxy: reading the body: {e}")),
    };
    exchange(&ctx, origin, parts.method, &parts.uri, parts.headers, body).await
}

/// One request in absolute form, forwarded and answered (and recorded if it writes to PD).
pub(crate) async fn exchange(
    ctx: &Ctx,
    origin: Option<&PodOrigin>,
    method: Method,
    uri: &http::Uri,
    mut headers: http::HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let (Some(host), Some(scheme)) = (uri.host(), uri.scheme_str()) else {
        return bad_gateway(
            StatusCode::BAD_REQUEST,
            "sim-harness proxy: expected an absolute-form request (GET http://host:port/path); set HTTP_PROXY to this address".into(),
        );
    };
    if scheme != "http" {
        return bad_gateway(StatusCode::BAD_REQUEST, format!("sim-harness proxy: scheme {scheme} needs CONNECT"));
    }
    let port = uri.port_u16().unwrap_or(80);
    let (real, route) = match dial(ctx, origin, host, port) {
        Ok(found) => found,
        Err(e) => return bad_gateway(StatusCode::BAD_GATEWAY, format!("sim-harness proxy: {host}:{port}: {e}")),
    };
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    for h in ["proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "trailer", "upgrade"] {
        headers.remove(h);
    }
    let client = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let at = ctx.clock.now();
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let pd_cluster = match &route.target {
        Target::PdClient { cluster, .. } if write => Some(*cluster),
        _ => None,
    };
    let evict_leader_before = pd_cluster
        .filter(|_| path.starts_with("/pd/api/v1/scheduler"))
        .and_then(|c| ctx.clusters.get(c))
        .map(|c| c.snapshot().evict_leader_stores.unwrap_or_default().into_iter().collect());
    let target = format!("http://{real}{path}");
    let result = ctx.http.call(method.clone(), &target, headers, body.clone()).await;
    let answered = result.as_ref().map(|(status, _, _)| status.as_u16());
    if let Some(cluster) = pd_cluster {
        // A write PD never answered may still have been applied (the member that took a
        // removal of itself stops before its answer is sent): it is logged with status
        // [`UNANSWERED`], so the watcher judges it too.
        ctx.writes.push(PdWrite {
            seq: 0,
            at,
            client,
            method: method.to_string(),
            uri: uri.to_string(),
            path,
            body,
            status: answered.unwrap_or(UNANSWERED),
            cluster,
            evict_leader_before,
        });
    }
    let (status, resp_headers, resp_body) = match result {
        Ok(r) => r,
        Err(e) => return bad_gateway(StatusCode::BAD_GATEWAY, format!("sim-harness proxy: {host}:{port}: {e}")),
    };
    let mut resp = Response::new(Body::from(resp_body));
    *resp.status_mut() = status;
    *resp.headers_mut() = resp_headers;
    for h in ["connection", "keep-alive", "transfer-encoding"] {
        resp.headers_mut().remove(h);
    }
    resp
}
