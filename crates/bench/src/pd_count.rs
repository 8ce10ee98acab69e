//! Counts every request the operator sends to PD (reads too; the harness' proxy logs
//! only writes): a forward proxy of our own in front of the harness' proxy, which the
//! operator is pointed at (`--pd-proxy`). It changes nothing of what it forwards.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sim_clock::SimClock;
use tokio::net::TcpListener;

/// One request forwarded to PD.
#[derive(Clone, Debug)]
pub struct PdRequest {
    /// Simulated time since the clock's start.
    pub at: std::time::Duration,
    pub method: String,
    /// Path without the query (shown with BENCH_VERBOSE).
    pub path: String,
}

impl PdRequest {
    pub fn is_read(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

#[derive(Clone)]
pub struct PdCounter {
    pub url: String,
    log: Arc<Mutex<Vec<PdRequest>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl PdCounter {
    /// Listens on a free local port and forwards through `upstream` (the harness' proxy).
    pub async fn start(upstream: &str, clock: SimClock) -> anyhow::Result<PdCounter> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        let client = reqwest::Client::builder().proxy(reqwest::Proxy::all(upstream)?).build()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (client, log, clock) = (client.clone(), shared.clone(), clock.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| forward(client.clone(), log.clone(), clock.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(PdCounter { url: format!("http://{addr}"), log, task: Arc::new(task) })
    }

    /// Requests from simulated time `from` on.
    pub fn since(&self, from: std::time::Duration) -> Vec<PdRequest> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).iter().filter(|r| r.at >= from).cloned().collect()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn forward(
    client: reqwest::Client,
    log: Arc<Mutex<Vec<PdRequest>>>,
    clock: SimClock,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let bad = |status: StatusCode, message: String| {
        let mut resp = Response::new(Body::from(message));
        *resp.status_mut() = status;
        Ok(resp)
    };
    let Ok(body) = axum::body::to_bytes(Body::new(body), 64 << 20).await else {
        return bad(StatusCode::BAD_REQUEST, "bench proxy: cannot read the body".into());
    };
    log.lock().unwrap_or_else(PoisonError::into_inner).push(PdRequest {
        at: clock.now().since_start(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
    });
    let mut headers = parts.headers;
    for h in ["proxy-connection", "connection", "keep-alive", "host", "content-length", "transfer-encoding"] {
        headers.remove(h);
    }
    let sent = client.request(parts.method, parts.uri.to_string()).headers(headers).body(body).send().await;
    let Ok(answer) = sent else {
        return bad(StatusCode::BAD_GATEWAY, "bench proxy: the harness proxy did not answer".into());
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        return bad(StatusCode::BAD_GATEWAY, "bench proxy: the answer broke off".into());
    };
    for h in ["connection", "keep-alive", "transfer-encoding", "content-length"] {
        headers.remove(h);
    }
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}
