//! A tiny scripted HTTP server on 127.0.0.1 (port 0) that answers like PD: tests
//! script replies per method and path and read back every request received.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// Status, content type, body.
    Body(u16, &'static str, String),
    /// Never answer (for timeouts).
    Hang,
}

impl Reply {
    /// As PD's render.JSON writes: JSON with a trailing newline, PD's content type.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::Body(status, "application/json; charset=UTF-8", format!("{body}\n"))
    }

    /// As Go's http.Error writes: plain text with a trailing newline.
    pub fn text(status: u16, body: &str) -> Self {
        Reply::Body(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }

    /// Raw bytes as given (e.g. PD's pre-encoded region lists, no newline).
    pub fn raw(status: u16, content_type: &'static str, body: &str) -> Self {
        Reply::Body(status, content_type, body.to_owned())
    }
}

/// A request the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub user_agent: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct Script {
    /// Replies per (method, path); the last one repeats.
    replies: HashMap<(String, String), VecDeque<Reply>>,
    requests: Vec<Recorded>,
}

#[derive(Clone, Default)]
pub(crate) struct Fake {
    script: Arc<Mutex<Script>>,
}

impl Fake {
    pub fn on(&self, method: &str, path: &str, reply: Reply) -> &Self {
        self.script.lock().unwrap().replies.entry((method.to_owned(), path.to_owned())).or_default().push_back(reply);
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }

    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("no request received")
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(answer).with_state(self.clone())
    }
}

async fn answer(State(fake): State<Fake>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let key = (parts.method.to_string(), parts.uri.path().to_owned());
    let reply = {
        let mut script = fake.script.lock().unwrap();
        script.requests.push(Recorded {
            method: key.0.clone(),
            path: key.1.clone(),
            query: parts.uri.query().map(str::to_owned),
            user_agent: parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        script
            .replies
            .get_mut(&key)
            .and_then(|queue| if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() })
    };
    match reply {
        // gorilla/mux's answer for an unknown route.
        None => plain(404, "text/plain; charset=utf-8", "404 page not found\n".into()),
        Some(Reply::Hang) => std::future::pending().await,
        Some(Reply::Body(status, content_type, body)) => plain(status, content_type, body),
    }
}

fn plain(status: u16, content_type: &'static str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A fake PD served over plain HTTP.
pub(crate) struct FakePd {
    pub fake: Fake,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for FakePd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::ops::Deref for FakePd {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.fake
    }
}

impl FakePd {
    pub async fn start() -> Self {
        let fake = Fake::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = fake.router();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakePd { fake, addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A TLS fake (HTTP/1.1 over rustls) that requires a client certificate signed by `client_ca`.
    pub async fn start_tls(server: rustls::ServerConfig) -> Self {
        let fake = Fake::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let router = fake.router();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    // A client without an acceptable certificate fails here; drop it.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakePd { fake, addr, task }
    }
}

/// An address where nothing listens (bound, then released).
pub(crate) async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
